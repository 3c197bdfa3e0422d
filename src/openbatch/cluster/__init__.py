"""Several API servers on one database: messages through it, presence, and one leader at a time."""
