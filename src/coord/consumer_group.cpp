// Placeholder for consumer groups (issue 3).
