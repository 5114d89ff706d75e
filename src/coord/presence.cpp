// Placeholder: filled in by the presence work (issue 3).
