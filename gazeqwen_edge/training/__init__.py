"""Training and evaluation: StreamGaze and the synthetic gaze benchmark as `QAItem`s (tasks.py), the evaluator and
the two-stage trainer."""
