"""The search controller: search spaces, the LSTM policy, REINFORCE/PPO and the search loop."""
