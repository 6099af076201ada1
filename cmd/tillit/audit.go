package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/tillit-sts/tillit/internal/audit"
	"github.com/tillit-sts/tillit/internal/config"
	"github.com/tillit-sts/tillit/internal/server"
	"github.com/tillit-sts/tillit/internal/store"
)

func auditCommands() []command {
	return []command{
		{"verify", "check that no audit record was changed, removed or added", runAuditVerify},
		{"reseal", "record a break in a broken chain and start it again, so that the server serves", runAuditReseal},
		{"tail", "print the newest audit records (JSON lines); -f follows", runAuditTail},
		{"query", "print the audit records that match (JSON lines), for export", runAuditQuery},
	}
}

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runSubcommand(ctx, "audit", auditCommands(), args, stdout, stderr)
}

// openAudit opens the store of the configuration for reading the audit log.
func openAudit(ctx context.Context, sf *storeFlags) (store.Store, *config.Config, func(), error) {
	cfg, err := sf.load()
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := server.Open(ctx, cfg.Storage)
	if err != nil {
		return nil, nil, nil, err
	}
	return st, cfg, func() { st.Close() }, nil
}

// headList collects repeated --head flags.
type headList []store.AuditHead

func (h *headList) String() string { return fmt.Sprint(len(*h)) }

func (h *headList) Set(s string) error {
	head, err := audit.ParseHead(s)
	if err != nil {
		return err
	}
	*h = append(*h, head)
	return nil
}

func runAuditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit verify", stderr)
	sf := addStoreFlags(fs)
	var want headList
	fs.Var(&want, "head", "a chain head recorded elsewhere (instance:seq:mac, from the server's log); may be repeated")
	setUsage(fs, "tillit audit verify --config tillit.yaml | --dev [--head INSTANCE:SEQ:MAC]...",
		"Checks every instance's audit chain: that no record was changed, removed or added",
		"and that each ends at its sealed head; with --head, also that no record logged",
		"before that head is missing (a rollback of the database). Prints one line per chain",
		"and exits 1 when one is not intact. Needs the key-encryption key (the audit key is",
		"derived from it).")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	log, cfg, done, err := openAudit(ctx, sf)
	if err != nil {
		return err
	}
	defer done()
	kek, err := cfg.KeyEncryptionKey()
	if err != nil {
		return err
	}
	key, err := audit.DeriveKey(kek)
	if err != nil {
		return err
	}
	// Every chain in the log: the instances the records name, and those
	// that only a head or a --head names. A chain with no head, or a
	// head with no records, fails in Verify.
	recorded, err := log.AuditInstances(ctx)
	if err != nil {
		return err
	}
	heads, err := log.AuditHeads(ctx)
	if err != nil {
		return err
	}
	byInstance := map[string]*store.AuditHead{}
	instances := recorded
	for i := range heads {
		byInstance[heads[i].Instance] = &heads[i]
		instances = append(instances, heads[i].Instance)
	}
	wanted := map[string]*store.AuditHead{}
	for i := range want {
		wanted[want[i].Instance] = &want[i]
		instances = append(instances, want[i].Instance)
	}
	slices.Sort(instances)
	instances = slices.Compact(instances)
	if len(instances) == 0 {
		fmt.Fprintln(stdout, "The audit log is empty.")
		return nil
	}
	bad := 0
	for _, inst := range instances {
		res, err := key.Verify(inst, log.AuditChain(ctx, inst), byInstance[inst], wanted[inst])
		if err != nil {
			return err
		}
		breaks := ""
		if n := len(res.Breaks); n > 0 {
			breaks = fmt.Sprintf(", %d resealed break%s", n, plural(n))
		}
		if res.OK() {
			fmt.Fprintf(stdout, "%s: %d records, intact%s; head %s\n", inst, res.Records, breaks, audit.FormatHead(res.Last))
		} else {
			bad++
			n := len(res.Problems)
			fmt.Fprintf(stdout, "%s: %d records, %d problem%s%s:\n", inst, res.Records, n, plural(n), breaks)
			for _, p := range res.Problems {
				fmt.Fprintf(stdout, "  %s\n", p)
			}
		}
		// A resealed break is not tampering: an operator who holds the
		// key recorded it, and the records it names are outside the
		// chain. It is listed so that it is never overlooked.
		for _, b := range res.Breaks {
			fmt.Fprintf(stdout, "  %s #%d: resealed after #%d: %s\n", inst, b.Seq, b.After, b.Reason)
			for _, p := range b.Problems {
				fmt.Fprintf(stdout, "    (break) %s\n", p)
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d audit chains are not intact", bad, len(instances))
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func runAuditReseal(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit reseal", stderr)
	sf := addStoreFlags(fs)
	instance := fs.String("instance", "", "the instance whose chain to reseal (required)")
	reason := fs.String("reason", "", "why, in a few words; kept in the reseal record with what verify found")
	setUsage(fs, "tillit audit reseal --config tillit.yaml | --dev --instance NAME [--reason TEXT]",
		"Records a break in an instance's broken chain, with what verify found, and starts",
		"the chain again after it, so that the instance's server is ready again. The break",
		"stays visible: verify lists it every time. Run verify first and keep its output.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	if *instance == "" {
		return badArgs(stderr, "audit reseal", "--instance is required")
	}
	cfg, err := sf.load()
	if err != nil {
		return err
	}
	kek, err := cfg.KeyEncryptionKey()
	if err != nil {
		return err
	}
	if kek == nil {
		return errors.New("no key-encryption key: a reseal record is sealed with the audit key derived from it")
	}
	key, err := audit.DeriveKey(kek)
	if err != nil {
		return err
	}
	st, err := server.OpenAudit(ctx, cfg.Storage, key)
	if err != nil {
		return err
	}
	defer st.Close()
	rec, err := audit.Reseal(ctx, key, st, *instance, time.Now(), *reason)
	if errors.Is(err, audit.ErrIntact) {
		fmt.Fprintf(stdout, "%s: intact: nothing to reseal\n", *instance)
		return nil
	}
	if err != nil {
		return err
	}
	after, err := audit.Anchor(rec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: resealed at #%d after #%d (%s); head %s\n", rec.Instance, rec.Seq, after.Seq, rec.Error,
		audit.FormatHead(store.AuditHead{Instance: rec.Instance, Seq: rec.Seq, MAC: rec.MAC}))
	return nil
}

func runAuditTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit tail", stderr)
	sf := addStoreFlags(fs)
	n := fs.Int("n", 20, "how many records")
	follow := fs.Bool("f", false, "keep printing new records")
	interval := fs.Duration("interval", time.Second, "with -f: how often to look for new records")
	setUsage(fs, "tillit audit tail --config tillit.yaml | --dev [-n N] [-f [--interval D]]",
		"Prints the newest audit records as JSON lines, oldest first; with -f keeps printing",
		"new ones until interrupted.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	log, _, done, err := openAudit(ctx, sf)
	if err != nil {
		return err
	}
	defer done()
	recs, err := log.AuditRecords(ctx, store.AuditFilter{Limit: *n, Newest: true})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	// last remembers, per instance, the newest record printed.
	last := map[string]int64{}
	print := func(recs []store.AuditRecord) error {
		for _, r := range recs {
			if err := enc.Encode(exportRecord(r)); err != nil {
				return err
			}
			last[r.Instance] = max(last[r.Instance], r.Seq)
		}
		return nil
	}
	if err := print(recs); err != nil || !*follow {
		return err
	}
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		heads, err := log.AuditHeads(ctx)
		if err != nil {
			return err
		}
		for _, h := range heads {
			if h.Seq <= last[h.Instance] {
				continue
			}
			recs, err := log.AuditRecords(ctx, store.AuditFilter{Instance: h.Instance, AfterSeq: last[h.Instance]})
			if err != nil {
				return err
			}
			if err := print(recs); err != nil {
				return err
			}
		}
	}
}

func runAuditQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit query", stderr)
	sf := addStoreFlags(fs)
	var f store.AuditFilter
	fs.StringVar(&f.ClientID, "client", "", "only this client")
	fs.StringVar(&f.Outcome, "outcome", "", "only this outcome: "+strings.Join(audit.Outcomes, ", "))
	fs.StringVar(&f.Instance, "instance", "", "only this server instance")
	since := fs.String("since", "", "from this time (RFC 3339) or this long ago (e.g. 1h)")
	until := fs.String("until", "", "before this time (RFC 3339) or this long ago")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many records (0: all)")
	setUsage(fs, "tillit audit query --config tillit.yaml | --dev [--client ID] [--outcome O] [--instance NAME] [--since T] [--until T] [--limit N]",
		"Prints the audit records that match every filter given, as JSON lines, oldest",
		"first: for export to a log system or a spreadsheet.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArg(fs)
	}
	var err error
	if f.Since, err = parseWhen(*since); err != nil {
		return err
	}
	if f.Until, err = parseWhen(*until); err != nil {
		return err
	}
	if f.Outcome != "" && !slices.Contains(audit.Outcomes, f.Outcome) {
		return fmt.Errorf("--outcome must be one of %s", strings.Join(audit.Outcomes, ", "))
	}
	log, _, done, err := openAudit(ctx, sf)
	if err != nil {
		return err
	}
	defer done()
	recs, err := log.AuditRecords(ctx, f)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, r := range recs {
		if err := enc.Encode(exportRecord(r)); err != nil {
			return err
		}
	}
	return nil
}

// parseWhen reads an RFC 3339 time or a duration before now.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
}

// exported is one audit record as a JSON line: what a decision records
// (docs/design.md, "Audit log") under stable field names, the MACs in
// base64url.
type exported struct {
	Instance        string    `json:"instance"`
	Seq             int64     `json:"seq"`
	Time            time.Time `json:"time"`
	RequestID       string    `json:"request_id"`
	ClientRequestID string    `json:"client_request_id,omitempty"`
	Endpoint        string    `json:"endpoint"`
	GrantType       string    `json:"grant_type,omitempty"`
	ClientID        string    `json:"client_id,omitempty"`
	OrgParent       string    `json:"orgnr_parent,omitempty"`
	OrgChild        string    `json:"orgnr_child,omitempty"`
	OrgSupplier     string    `json:"orgnr_supplier,omitempty"`
	Subject         string    `json:"subject,omitempty"`
	Audience        string    `json:"audience,omitempty"`
	Scopes          []string  `json:"scopes,omitempty"`
	TokenID         string    `json:"token_jti,omitempty"`
	Outcome         string    `json:"outcome"`
	Error           string    `json:"error,omitempty"`
	Prev            string    `json:"prev"`
	MAC             string    `json:"mac"`
}

func exportRecord(r store.AuditRecord) exported {
	b64 := base64.RawURLEncoding.EncodeToString
	return exported{
		Instance: r.Instance, Seq: r.Seq, Time: r.Time, RequestID: r.RequestID, ClientRequestID: r.ClientRequestID, Endpoint: r.Endpoint,
		GrantType: r.GrantType, ClientID: r.ClientID, OrgParent: r.OrgParent, OrgChild: r.OrgChild,
		OrgSupplier: r.OrgSupplier, Subject: r.Subject, Audience: r.Audience, Scopes: r.Scopes,
		TokenID: r.TokenID, Outcome: r.Outcome, Error: r.Error, Prev: b64(r.Prev), MAC: b64(r.MAC),
	}
}
