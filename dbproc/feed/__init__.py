"""The change feed (events), the review gate, notifications and watch mode (§13, §14)."""
