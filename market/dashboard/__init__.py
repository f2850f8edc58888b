"""The web dashboard (`fedmarket dashboard`): the market's projects, rounds, scores and money, read from the chain
and storage only."""
