// Placeholder: filled in by the scratchpad work (issue 3).
