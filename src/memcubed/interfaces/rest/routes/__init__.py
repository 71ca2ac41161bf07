"""REST routes, one module per resource; each route calls one kernel operation."""
