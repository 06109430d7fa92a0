"""Command-line training and evaluation for fer-demo."""
