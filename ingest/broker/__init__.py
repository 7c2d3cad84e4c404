"""What the receiver and the workers share about the broker: task names, the message, the publisher, Redis."""
