package monitor

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/medama-io/go-useragent"
	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/lethehq/lethe/server/netinfo"
)

// enricher derives what operators see of a new visitor from the request:
// browser and OS from the User-Agent, location and ISP from MaxMind-format
// databases, host name by reverse DNS. It never logs what it finds (P9).
type enricher struct {
	ua       *useragent.Parser
	city     *maxminddb.Reader
	asn      *maxminddb.Reader
	resolver *netinfo.Resolver
}

func newEnricher(o Options) (*enricher, error) {
	e := &enricher{ua: useragent.NewParser(), resolver: o.Hosts}
	var err error
	if o.GeoIPCity != "" {
		if e.city, err = maxminddb.Open(o.GeoIPCity); err != nil {
			return nil, fmt.Errorf("geoip city database: %w", err)
		}
	}
	if o.GeoIPASN != "" {
		if e.asn, err = maxminddb.Open(o.GeoIPASN); err != nil {
			e.close()
			return nil, fmt.Errorf("geoip asn database: %w", err)
		}
	}
	return e, nil
}

func (e *enricher) close() {
	if e.city != nil {
		e.city.Close()
	}
	if e.asn != nil {
		e.asn.Close()
	}
}

// userAgent fills browser, version, OS and device from a User-Agent header.
func (e *enricher) userAgent(v *Visit, ua string) {
	if ua == "" {
		return
	}
	if len(ua) > 1024 {
		ua = ua[:1024]
	}
	a := e.ua.Parse(ua)
	v.Browser = string(a.Browser())
	v.BrowserVersion = a.BrowserVersion()
	v.OS = string(a.OS())
	v.Device = string(a.Device())
}

type cityRecord struct {
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"subdivisions"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
}

type asnRecord struct {
	Organization string `maxminddb:"autonomous_system_organization"`
}

// geo fills location and ISP from the configured databases. Errors (an
// address not in the database, a corrupt record) leave fields empty.
func (e *enricher) geo(v *Visit, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	if e.city != nil {
		var r cityRecord
		if err := e.city.Lookup(ip).Decode(&r); err == nil {
			v.City = r.City.Names["en"]
			v.Country = r.Country.Names["en"]
			v.CountryCode = r.Country.ISOCode
			v.PostalCode = r.Postal.Code
			if len(r.Subdivisions) > 0 {
				v.Region = r.Subdivisions[0].Names["en"]
			}
		}
	}
	if e.asn != nil {
		var r asnRecord
		if err := e.asn.Lookup(ip).Decode(&r); err == nil {
			v.ISP = r.Organization
		}
	}
}

// enrich fills a new visit from the request. With hideIP the address is
// used for the location only and neither it nor a host name is kept (P5);
// no reverse lookup is even made.
func (e *enricher) enrich(ctx context.Context, v *Visit, h http.Header, hideIP bool) {
	e.userAgent(v, h.Get("User-Agent"))
	ip := netinfo.ClientAddr(ctx)
	e.geo(v, ip)
	if hideIP || !ip.IsValid() {
		return
	}
	v.IP = ip.String()
	if e.resolver != nil {
		v.Host = e.resolver.Host(ctx, v.IP)
	}
}
