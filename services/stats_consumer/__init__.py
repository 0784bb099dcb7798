"""Stats consumer: writes usage events to PostgreSQL in batches and answers stats queries."""
