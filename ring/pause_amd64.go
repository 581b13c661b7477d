package ring

// cpuRelax tells the CPU this is a spin-wait loop (PAUSE).
func cpuRelax()
