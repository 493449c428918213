"""The search controller: search spaces, the LSTM policy, strategies and reward models.

It only proposes architectures: no I/O, no processes, no store (the runtime's search
package runs the trials)."""
