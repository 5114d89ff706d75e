// Placeholder: filled in by the task_board work (issue 3).
