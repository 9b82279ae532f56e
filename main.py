"""Entry point the Docker image and orchestrators call: `python main.py spec|check|write ...`."""

from destination_s3.run import run

if __name__ == "__main__":
    run()
