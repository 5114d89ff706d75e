// Placeholder: tests of the presence (issue 3).
