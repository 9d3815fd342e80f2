package authz

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcp-authz/mcp-authz/authz/dpop"
)

// scanMatch and scanMetadataRoute are the linear scans routeIndex replaced, kept as the
// oracle of the differential tests below.
func scanMatch(routes []*route, host, port, path string) *route {
	var best *route
	for _, rt := range routes {
		if !pathUnder(path, rt.prefix) || best != nil && len(rt.prefix) <= len(best.prefix) {
			continue
		}
		for _, h := range rt.hosts {
			if h.match(host, port) {
				best = rt
				break
			}
		}
	}
	return best
}

func scanMetadataRoute(routes []*route, host, port, pathAndQuery string) *route {
	if !strings.HasPrefix(pathAndQuery, "/.well-known/oauth-protected-resource") {
		return nil
	}
	var only *route
	n := 0
	for _, rt := range routes {
		if rt.metadataPath != pathAndQuery {
			continue
		}
		for _, h := range rt.hosts {
			if h.match(host, port) {
				return rt
			}
		}
		only = rt
		n++
	}
	if n == 1 {
		return only
	}
	return nil
}

// Hosts and paths are drawn from small pools so that random configurations collide: the same
// host in other cases and with other ports, Unicode case-folding partners ("K" and the Kelvin
// sign, "s" and the long s, the three sigmas), invalid UTF-8, IPv6 literals, "*", and prefixes
// that are segment prefixes of each other or end in "/".
var (
	routingHosts = []string{
		"a.example", "A.Example", "a.example:443", "a.example:80", "a.example:8443", "b.example",
		"b.example:8080", "k.example", "K.example", "\u212a.example", "s.example", "\u017f.example",
		"\u03c3.example", "\u03a3.example", "\u03c2.example", "x\xff.example", "x\xfe.example",
		"[::1]", "[::1]:8080", "[::1]:", "127.0.0.1", "127.0.0.1:9191", "", ":8080", "*",
		"a.example:", "é.example", "É.example",
	}
	routingPaths = []string{
		"/", "/mcp", "/mcp/", "/mcp/x", "/mcp/x/y", "/mcpx", "/m", "/api", "/api/v1", "/api/v1/",
		"/caf%C3%A9", "/café/x", "/a/b/c/d/e", "/mcp/x/",
	}
	routingReqHosts = append(append([]string{}, routingHosts[:len(routingHosts)-3]...),
		"A.EXAMPLE:443", "a.example:444", "c.example", "[::1]:80", "[::2]", "KELVIN", "k.EXAMPLE:80",
		"\u212a.EXAMPLE", "\u017f.example:8443", "S.example", "\u03a3.EXAMPLE:8080", "x\xfd.example")
	routingReqPaths = append(append([]string{}, routingPaths...),
		"/mcp/x/y/z", "/api/v2", "/api/v1/z", "/mcpx/y", "/a/b", "/a/b/c/d/e/f/g", "/zzz", "/m/cp")
)

func randomRoutingConfig(r *rand.Rand, n int) []Resource {
	var rs []Resource
	ids := []string{"https://a.example/mcp", "https://b.example/mcp", "https://a.example/api",
		"http://127.0.0.1:9191/mcp", "https://a.example", "https://[::1]:8080/mcp", "https://b.example/api/v1"}
	for i := range n {
		res := Resource{
			Name:                 fmt.Sprint("r", i),
			ID:                   ids[r.IntN(len(ids))],
			AuthorizationServers: []string{"https://as.example"},
		}
		for range r.IntN(4) { // 0: the host of ID
			res.Hosts = append(res.Hosts, routingHosts[r.IntN(len(routingHosts))])
		}
		if r.IntN(3) > 0 { // else the path of ID
			res.PathPrefix = routingPaths[r.IntN(len(routingPaths))]
		}
		rs = append(rs, res)
	}
	return rs
}

// TestRouteIndexMatchesScan: over random configurations and requests, the index picks the
// route the linear scan picks, for Check's routing, the metadata path and Route; with the
// routes of a host searched in order, indexed by prefix, and as New chooses.
func TestRouteIndexMatchesScan(t *testing.T) {
	defer func(n int) { smallHost = n }(smallHost)
	for _, n := range []int{0, 1 << 30, smallHost} {
		smallHost = n
		testRouteIndexMatchesScan(t)
	}
}

func testRouteIndexMatchesScan(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 21))
	compared, found, metaFound := 0, 0, 0
	for cfg := range 600 {
		rs := randomRoutingConfig(r, 1+r.IntN(12))
		a, err := New(Options{Unavailable: Unavailable{Status: 401}, Resources: rs})
		if err != nil {
			t.Fatalf("seed %d config %d: %v", seed, cfg, err)
		}
		for range 200 {
			hp := routingReqHosts[r.IntN(len(routingReqHosts))]
			host, port := splitHostPort(hp)
			path := routingReqPaths[r.IntN(len(routingReqPaths))]
			clean, err := cleanPath(path)
			if err != nil {
				t.Fatalf("test path %q: %v", path, err)
			}
			want, got := scanMatch(a.routes, host, port, clean), a.match(host, port, clean)
			if got != want {
				t.Fatalf("seed %d: match(%q, %q) = %v, scan %v\nconfig %+v", seed, hp, clean, name(got), name(want), rs)
			}
			compared++
			if want != nil {
				found++
			}
			wantID, wantOK := "", false
			if want != nil {
				wantID, wantOK = want.ID, true
			}
			if id, ok := a.Route(hp, path); id != wantID || ok != wantOK {
				t.Fatalf("seed %d: Route(%q, %q) = %q %v, scan %q %v", seed, hp, path, id, ok, wantID, wantOK)
			}
			rt := a.routes[r.IntN(len(a.routes))]
			mp := rt.metadataPath
			if r.IntN(4) == 0 {
				mp = "/.well-known/oauth-protected-resource/other"
			}
			got, want = a.metadataRoute(host, port, mp), scanMetadataRoute(a.routes, host, port, mp)
			if got != want {
				t.Fatalf("seed %d: metadataRoute(%q, %q) = %v, scan %v\nconfig %+v", seed, hp, mp, name(got), name(want), rs)
			}
			if want != nil {
				metaFound++
			}
		}
	}
	// The comparison means something only if routes were found as well as missed.
	for _, n := range []int{found, metaFound} {
		if n < compared/10 || n > compared*9/10 {
			t.Fatalf("seed %d: %d and %d of %d requests routed: tune the pools", seed, found, metaFound, compared)
		}
	}
}

func name(rt *route) string {
	if rt == nil {
		return "<none>"
	}
	return rt.Name
}

// TestFoldKeyAgreesWithEqualFold: the index finds by foldKey the hosts hostPattern.match
// compares with strings.EqualFold; two hosts EqualFold calls equal must share a key, or a
// route would be missed.
func TestFoldKeyAgreesWithEqualFold(t *testing.T) {
	alphabet := []string{"a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "\u03c3", "\u03a3", "\u03c2",
		"\xff", "\xfe", "\ufffd", ".", "-", "1", "é", "É", "\u0130", "i", "I", "\u0131", "ß", "ẞ", "[", ":"}
	r := rand.New(rand.NewPCG(rand.Uint64(), 21))
	for range 200000 {
		var a, b strings.Builder
		for range 1 + r.IntN(4) {
			a.WriteString(alphabet[r.IntN(len(alphabet))])
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		x, y := a.String(), b.String()
		if strings.EqualFold(x, y) && foldKey(x) != foldKey(y) {
			t.Fatalf("EqualFold(%q, %q) but keys %q, %q", x, y, foldKey(x), foldKey(y))
		}
	}
	// Every rune against each member of its folding orbit.
	for c := rune(0); c <= unicode.MaxRune; c++ {
		if !utf8.ValidRune(c) {
			continue
		}
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			if foldKey(string(c)) != foldKey(string(f)) {
				t.Fatalf("%U and %U fold together but have keys %q, %q", c, f, foldKey(string(c)), foldKey(string(f)))
			}
		}
	}
	if s := "mcp.example.com"; foldKey(s) != s || testing.AllocsPerRun(10, func() { foldKey(s) }) != 0 {
		t.Error("a lower-case ASCII host should be its own key, without allocating")
	}
}

// tenants configures n resources, one per tenant host, as a multi-tenant gateway would.
func tenants(n int) []Resource {
	rs := make([]Resource, n)
	for i := range rs {
		rs[i] = Resource{
			Name:                 fmt.Sprint("tenant-", i),
			ID:                   fmt.Sprintf("https://tenant-%d.example.com/mcp", i),
			AuthorizationServers: []string{iss},
			Audiences:            []string{res},
			RequiredScopes:       []string{"mcp:tools"},
		}
	}
	return rs
}

// TestManyTenantsRoute: with 10,000 resources every tenant's requests and metadata reach that
// tenant's resource, and an unknown host reaches none.
func TestManyTenantsRoute(t *testing.T) {
	a, err := New(Options{Unavailable: Unavailable{Status: 401}, Resources: tenants(10000)})
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 4999, 9999} {
		host := fmt.Sprintf("tenant-%d.example.com", i)
		if id, ok := a.Route(host, "/mcp/x"); !ok || id != fmt.Sprintf("https://%s/mcp", host) {
			t.Errorf("Route(%s) = %q %v", host, id, ok)
		}
		d := a.Check(context.Background(), &Request{Method: "GET", Host: host, Path: "/.well-known/oauth-protected-resource/mcp"})
		if d.Reason != ReasonMetadata || !strings.Contains(string(d.Body), host) {
			t.Errorf("metadata for %s: %v %s", host, d.Reason, d.Body)
		}
	}
	if id, ok := a.Route("tenant-10000.example.com", "/mcp"); ok {
		t.Errorf("an unknown tenant routed to %q", id)
	}
}

// sharedAnswers lists a ready route's shared answers in the order New numbered them when it
// built them all at once (before they were built on first use): the denials and metadata
// answers, the rules' denials, then the DPoP ones.
func sharedAnswers(rt *route) []*Decision {
	ds, dp, m := &rt.denials, &rt.dpDenials, &rt.metaAnswers
	out := []*Decision{ds.missing, ds.multiple, ds.query, ds.invalid, ds.unavailable,
		ds.insufficient, ds.operation, ds.mismatch, m.get, m.head, m.options, m.notAllowed}
	out = append(out, rt.rules.denied...)
	if rt.DPoP != BindingOff {
		out = append(out, dp.multiple, dp.both, dp.query, dp.invalid, dp.unavailable, dp.insufficient,
			dp.operation, dp.mismatch, dp.proof, dp.dpopOnly, ds.proof, ds.dpopOnly)
	}
	return out
}

// TestRouteAnswersOnFirstUse: New builds no route's denials or metadata answers; a Check
// builds those of the route it matched, and only those; the Shared numbers do not depend on
// which route was used first: they are the ones an eager build in configuration order gave.
func TestRouteAnswersOnFirstUse(t *testing.T) {
	ck, err := dpop.NewChecker(dpop.Config{ReplayKey: []byte(strings.Repeat("r", 32)),
		Now: func() time.Time { return testNow }, Replay: dpop.NewReplay(nil, 100, nil, func() time.Time { return testNow })})
	if err != nil {
		t.Fatal(err)
	}
	var rs []Resource
	for i := range 4 {
		r := Resource{Name: fmt.Sprint("t", i), ID: fmt.Sprintf("https://t%d.example.com/mcp", i),
			AuthorizationServers: []string{iss}, RequiredScopes: []string{"mcp:tools"}}
		if i%2 == 1 {
			r.DPoP = BindingAllowed
			r.Rules = []Rule{{Name: "admin", Paths: []string{"/mcp/admin"}, Scopes: []string{"mcp:admin"}},
				{Name: "ro", Methods: []string{"GET"}, Scopes: []string{"mcp:read"}}}
		}
		rs = append(rs, r)
	}
	a, err := New(Options{Resources: rs, DPoP: ck, Unavailable: Unavailable{Status: 503, RetryAfter: 7},
		Verifiers: Verifiers{Opaque: tableVerifier{}}})
	if err != nil {
		t.Fatal(err)
	}
	built := func() (names []string) {
		for _, rt := range a.routes {
			if rt.denials.missing != nil || rt.metaAnswers.get != nil || rt.dpDenials.invalid != nil {
				names = append(names, rt.Name)
			}
		}
		return names
	}
	if b := built(); len(b) > 0 {
		t.Fatalf("New built the answers of %v", b)
	}
	check := func(host, path string, headers ...string) *Decision {
		r := req("GET", path, headers...)
		r.Host = host
		return a.Check(context.Background(), r)
	}
	if d := check("t2.example.com", "/mcp"); d.Status != 401 || d.Reason != ReasonMissingToken {
		t.Fatalf("t2: %d %s", d.Status, d.Reason)
	}
	if b := built(); fmt.Sprint(b) != "[t2]" {
		t.Fatalf("after a Check on t2, built: %v", b)
	}
	if d := check("t1.example.com", "/.well-known/oauth-protected-resource/mcp"); d.Status != 200 {
		t.Fatalf("t1 metadata: %d", d.Status)
	}
	if b := built(); fmt.Sprint(b) != "[t1 t2]" {
		t.Fatalf("after the metadata of t1, built: %v", b)
	}
	for i := len(a.routes) - 1; i >= 0; i-- {
		a.routes[i].ready()
	}
	next := uint32(firstShared)
	for _, rt := range a.routes {
		for i, d := range sharedAnswers(rt) {
			if d.Shared != next {
				t.Errorf("%s: answer %d (%s %d) has Shared %d, want %d", rt.Name, i, d.Reason, d.Status, d.Shared, next)
			}
			next++
		}
	}
	if last := a.shared.Load(); last != next-1 {
		t.Errorf("the last number given is %d, want %d", last, next-1)
	}
	if d := a.routes[3].dpDenials.unavailable; d.Status != 503 || headerOf(d, "retry-after") != "7" {
		t.Errorf("the DPoP unavailable denial ignores the setting: %d %q", d.Status, headerOf(d, "retry-after"))
	}
}

// TestRouteAnswersConcurrentFirstUse: many Checks racing to be a route's first see one set of
// answers (run with -race).
func TestRouteAnswersConcurrentFirstUse(t *testing.T) {
	a := testAuthorizer(t, nil)
	var wg sync.WaitGroup
	got := make([]*Decision, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = a.Check(context.Background(), req("POST", "/mcp"))
		}()
	}
	wg.Wait()
	for i, d := range got {
		if d != got[0] || d.Shared == 0 {
			t.Fatalf("Check %d: %p (Shared %d), Check 0: %p", i, d, d.Shared, got[0])
		}
	}
}
