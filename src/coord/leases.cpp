// Placeholder: the leases (issue 3).
