// Placeholder: tests of the leases (issue 3).
