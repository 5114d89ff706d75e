// Placeholder: the inbox (issue 3).
