"""``python -m vidflow.config > .env.example`` regenerates the committed example."""

from vidflow.config import env_example

print(env_example(), end="")
