"""Grading a class of notebook submissions safely (see autograder/README.md)."""
