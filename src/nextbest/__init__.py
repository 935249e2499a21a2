"""nextbest: next-best-offer decisioning host."""
