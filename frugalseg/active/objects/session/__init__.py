"""A person's session: what they give, what it proposes next, its settings and their tools' tasks."""
