//go:build race

package monitor

// raceEnabled: the race detector slows SQLite (transpiled C) about 20-fold;
// load tests do less under it.
const raceEnabled = true
