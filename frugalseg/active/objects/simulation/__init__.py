"""The simulated loop: its annotator, what each type makes and costs, the loop, runs, training samples."""
