"""Tasks, completions and the label stream."""
