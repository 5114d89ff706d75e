// Placeholder: tests of the task_board (issue 3).
