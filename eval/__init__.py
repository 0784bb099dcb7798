"""Semantic match quality: the training script for the hit verifier and the evaluation harness."""
