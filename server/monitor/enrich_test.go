package monitor

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/lethehq/lethe/server/netinfo"
)

const (
	chromeWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36"
	firefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
	safariIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)

func TestUserAgent_BrowserAndOS(t *testing.T) {
	t.Parallel()
	e := &enricher{ua: newEnricherForTest(t).ua}
	for _, tc := range []struct {
		ua, browser, os, device string
	}{
		{chromeWindows, "Chrome", "Windows", "Desktop"},
		{firefoxLinux, "Firefox", "Linux", "Desktop"},
		{safariIPhone, "Safari", "iOS", "Mobile"},
		{"", "", "", ""},
	} {
		var v Visit
		e.userAgent(&v, tc.ua)
		if v.Browser != tc.browser || v.OS != tc.os || v.Device != tc.device {
			t.Errorf("%q: got %q/%q/%q, want %q/%q/%q", tc.ua, v.Browser, v.OS, v.Device, tc.browser, tc.os, tc.device)
		}
	}
}

func newEnricherForTest(t *testing.T) *enricher {
	e, err := newEnricher(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writeGeoDBs builds a tiny City and ASN database: 203.0.113.0/24 is in
// London (SW1A) on "Canary Telecom"; 198.51.100.0/24 in Paris.
func writeGeoDBs(t testing.TB) (city, asn string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, records map[string]mmdbtype.Map) string {
		w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: typ, IncludeReservedNetworks: true, RecordSize: 24})
		if err != nil {
			t.Fatal(err)
		}
		for cidr, rec := range records {
			_, n, err := net.ParseCIDR(cidr)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Insert(n, rec); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.WriteTo(f); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	names := func(en string) mmdbtype.Map { return mmdbtype.Map{"en": mmdbtype.String(en)} }
	city = write("city.mmdb", "GeoLite2-City", map[string]mmdbtype.Map{
		"203.0.113.0/24": {
			"city":         mmdbtype.Map{"names": names("London")},
			"country":      mmdbtype.Map{"iso_code": mmdbtype.String("GB"), "names": names("United Kingdom")},
			"subdivisions": mmdbtype.Slice{mmdbtype.Map{"names": names("England")}},
			"postal":       mmdbtype.Map{"code": mmdbtype.String("SW1A")},
		},
		"198.51.100.0/24": {
			"city":    mmdbtype.Map{"names": names("Paris")},
			"country": mmdbtype.Map{"iso_code": mmdbtype.String("FR"), "names": names("France")},
			"postal":  mmdbtype.Map{"code": mmdbtype.String("75001")},
		},
	})
	asn = write("asn.mmdb", "GeoLite2-ASN", map[string]mmdbtype.Map{
		"203.0.113.0/24": {
			"autonomous_system_number":       mmdbtype.Uint32(64500),
			"autonomous_system_organization": mmdbtype.String("Canary Telecom"),
		},
	})
	return city, asn
}

func TestGeoIP_CityZipAndISPFromMMDB(t *testing.T) {
	t.Parallel()
	city, asn := writeGeoDBs(t)
	e := newEnv(t, Options{GeoIPCity: city, GeoIPASN: asn})
	ctx := context.Background()
	res, err := e.svc.track(atAddr(ctx, "203.0.113.9:51234"), http.Header{}, trackReq("acct-a", "https://shop.example/"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.svc.store.Visit(ctx, res.VisitorId)
	if err != nil {
		t.Fatal(err)
	}
	if v.City != "London" || v.PostalCode != "SW1A" || v.ISP != "Canary Telecom" || v.Region != "England" ||
		v.Country != "United Kingdom" || v.CountryCode != "GB" {
		t.Fatalf("got %+v", v)
	}
	// An address in the City database but not in the ASN one.
	res, err = e.svc.track(atAddr(ctx, "198.51.100.7:1"), http.Header{}, trackReq("acct-a", "https://shop.example/"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ = e.svc.store.Visit(ctx, res.VisitorId)
	if v.City != "Paris" || v.PostalCode != "75001" || v.ISP != "" {
		t.Fatalf("got %+v", v)
	}
}

func TestTrack_ReverseDNSThatNeverAnswersDoesNotStall(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	defer close(block)
	r := netinfo.NewResolver()
	r.Timeout = 150 * time.Millisecond
	r.Lookup = func(ctx context.Context, addr string) ([]string, error) {
		<-block // a DNS server that never answers, and ignores the context
		return nil, nil
	}
	e := newEnv(t, Options{Hosts: r})
	start := time.Now()
	res, err := e.svc.track(atAddr(context.Background(), "203.0.113.9:1"), http.Header{}, trackReq("acct-a", "https://shop.example/"))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Track took %v with a resolver timeout of %v", took, r.Timeout)
	}
	v, _ := e.svc.store.Visit(context.Background(), res.VisitorId)
	if v.IP != "203.0.113.9" || v.Host != "" {
		t.Fatalf("ip %q host %q", v.IP, v.Host)
	}
}

func TestTrack_ReverseDNSHostStored(t *testing.T) {
	t.Parallel()
	r := netinfo.NewResolver()
	r.Lookup = func(ctx context.Context, addr string) ([]string, error) { return []string{"visitor.isp.example."}, nil }
	e := newEnv(t, Options{Hosts: r})
	res, err := e.svc.track(atAddr(context.Background(), "203.0.113.9:1"), http.Header{}, trackReq("acct-a", "https://shop.example/"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := e.svc.store.Visit(context.Background(), res.VisitorId)
	if v.Host != "visitor.isp.example" {
		t.Fatalf("host %q", v.Host)
	}
}

// Over real HTTP, the peer is 127.0.0.1: untrusted, its X-Forwarded-For is
// ignored; trusted, it is believed.
func TestTrack_ForwardedForOverHTTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"untrusted", nil, "127.0.0.1"},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvBehind(t, Options{}, tc.trusted)
			vis := &visitor{e: e, xff: "203.0.113.50", ua: firefoxLinux}
			vis.mustTrack("acct-a", "https://shop.example/")
			v, err := e.svc.store.Visit(context.Background(), vis.id)
			if err != nil {
				t.Fatal(err)
			}
			if v.IP != tc.want {
				t.Fatalf("ip %q, want %q", v.IP, tc.want)
			}
			if v.Browser != "Firefox" || v.OS != "Linux" {
				t.Fatalf("browser %q os %q", v.Browser, v.OS)
			}
		})
	}
}
