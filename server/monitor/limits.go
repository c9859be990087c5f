package monitor

import "time"

// New visits per client address: a burst of 60, then one every 2 seconds.
// Generous for offices behind one NAT address; it stops a script from
// filling the scratch store with visits.
const (
	newVisitBurst = 60
	newVisitEvery = 2 * time.Second
)
