// Placeholder: tests of the inbox (issue 3).
