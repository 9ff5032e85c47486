"""Events examples: a subscriber, a publisher and competing workers over RabbitMQ."""
