package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The counters read around every measured run: Redis's command counts, the stand-in
// authorization servers' introspection calls and connections, and the server's own decisions.

// redisCmd sends one command to Redis (RESP) and returns its reply as text: a bulk string's
// content, an integer's digits, a status line.
func redisCmd(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("redis %s: empty reply", args[0])
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis %s: reply %q", args[0], line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis %s: reply %q", args[0], line)
}

// commandCalls sums the calls of INFO commandstats, leaving out the commands this driver itself
// sends (info, dbsize) and housekeeping ones.
func commandCalls(info string) int64 {
	var sum int64
	for line := range strings.Lines(info) {
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		switch strings.TrimPrefix(name, "cmdstat_") {
		case "info", "ping", "config", "dbsize", "memory":
			continue
		}
		for kv := range strings.SplitSeq(stats, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// infoField is one "key:value" of an INFO section, as a number.
func infoField(info, key string) float64 {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// asCounts is a stand-in authorization server's /count.
type asCounts struct {
	Introspect int64 `json:"introspect"`
	Conns      int64 `json:"conns"`
}

// A new connection for every /count, as curl made: slowas counts it in its own answer, and the
// run subtracts exactly one per query.
var freshClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getCounts(addr string) (asCounts, error) {
	var c asCounts
	resp, err := freshClient.Get("http://" + addr + "/count")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c, fmt.Errorf("GET %s/count: %s", addr, resp.Status)
	}
	return c, json.NewDecoder(resp.Body).Decode(&c)
}

func getMetrics(addr string) (string, error) {
	resp, err := freshClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// decisions sums mcp_authz_decisions_total over its labels: all decisions, and the allows.
func decisions(metrics string) (allow, total float64) {
	for line := range strings.Lines(metrics) {
		rest, ok := strings.CutPrefix(line, "mcp_authz_decisions_total")
		if !ok || (!strings.HasPrefix(rest, "{") && !strings.HasPrefix(rest, " ")) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		total += v
		if strings.Contains(line, `decision="allow"`) {
			allow += v
		}
	}
	return allow, total
}

// metricValue is an unlabelled sample's value ("name value").
func metricValue(metrics, name string) (float64, bool) {
	for line := range strings.Lines(metrics) {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			return v, err == nil
		}
	}
	return 0, false
}
