"""dgpo_ref."""
