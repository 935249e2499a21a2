-- LOCAL ONLY, never committed: stands in for the policies branch's 0010 so 0011 loads here
SELECT 1;
