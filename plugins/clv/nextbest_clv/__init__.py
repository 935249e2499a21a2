"""nextbest-clv: customer lifetime value plugin for nextbest."""
