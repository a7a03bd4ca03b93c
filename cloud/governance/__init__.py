"""Community governance (issue 9): organisations, the service catalogue, incidents and work
orders, dispatch with deadlines, the whistle (吹哨报到), residents' reports, alert grouping."""
