package limit

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a limit as an operator writes it, "N/period": N events at once,
// and the allowance refilled at N per period ("10/2s" is a burst of 10 and
// 5 a second). "0" or "off" turns the limit off. Rate is a flag.Value.
type Rate struct {
	N   int
	Per time.Duration
}

// ParseRate reads "N/period" (or "0"/"off").
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	if s == "0" || s == "off" {
		return Rate{}, nil
	}
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/period, like 10/1m, or off", s)
	}
	r := Rate{}
	var err error
	if r.N, err = strconv.Atoi(n); err != nil || r.N < 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a count", s, n)
	}
	if r.Per, err = time.ParseDuration(per); err != nil || r.Per <= 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a positive duration", s, per)
	}
	return r, nil
}

// Off reports whether the rate allows everything.
func (r Rate) Off() bool { return r.N <= 0 }

func (r Rate) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.N) + "/" + shortDuration(r.Per)
}

// Set implements flag.Value.
func (r *Rate) Set(s string) error {
	v, err := ParseRate(s)
	if err == nil {
		*r = v
	}
	return err
}

// Describe is the rate for an error message: "10 per 2s".
func (r Rate) Describe() string {
	if r.Off() {
		return "unlimited"
	}
	return strconv.Itoa(r.N) + " per " + shortDuration(r.Per)
}

// NewRate returns a limiter for r (one that allows everything when r is off).
func NewRate(r Rate) *Keyed {
	if r.Off() {
		return New(time.Second, 0)
	}
	return New(r.Per/time.Duration(r.N), r.N)
}

// shortDuration prints 1m rather than 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
