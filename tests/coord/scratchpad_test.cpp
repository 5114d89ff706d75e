// Placeholder: tests of the scratchpad (issue 3).
