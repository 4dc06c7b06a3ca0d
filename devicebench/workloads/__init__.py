"""What is timed: each module builds one workload's step for a device and says where it applies."""
