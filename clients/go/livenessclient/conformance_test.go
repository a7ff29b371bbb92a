package livenessclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/liveness-gateway/liveness-gateway/clients/go/livenessclient"
	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// conformanceTable is clients/conformance.json, shared by the four clients.
const conformanceTable = "../../conformance.json"

type conformanceCase struct {
	Name        string         `json:"name"`
	RPC         string         `json:"rpc"`
	Request     map[string]any `json:"request"`
	Code        string         `json:"code"`
	Reason      string         `json:"reason"`
	Score       *float64       `json:"score"`
	VendorCalls int            `json:"vendor_calls"`
	MinElapsedS float64        `json:"min_elapsed_s"`
	// SameLivenessDataIDAs names an earlier case whose liveness_data_id the result repeats.
	SameLivenessDataIDAs string `json:"same_liveness_data_id_as"`
}

// TestConformance runs the shared table against the gateway in LIVENESS_TARGET, which must
// run with the table's gateway_env (make test-client-go starts it so); vendor calls are
// counted at the sandbox in LIVENESS_SANDBOX_URL. Cases run in order, each with a new
// client with default settings; a stats handler records every attempt gRPC makes.
func TestConformance(t *testing.T) {
	raw, err := os.ReadFile(conformanceTable)
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		GatewayEnv map[string]string `json:"gateway_env"`
		Cases      []conformanceCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Cases) == 0 {
		t.Fatal("the conformance table has no cases")
	}
	target, sandbox := os.Getenv("LIVENESS_TARGET"), os.Getenv("LIVENESS_SANDBOX_URL")
	if target == "" || sandbox == "" {
		t.Fatal("LIVENESS_TARGET and LIVENESS_SANDBOX_URL are not set: run `make test-client-go`")
	}
	dataIDs := map[string]string{} // case name -> the liveness_data_id its result had
	for i, tc := range table.Cases {
		// Sequential on purpose: later cases depend on the breaker state earlier ones leave.
		t.Run(fmt.Sprintf("%02d %s", i, tc.Name), func(t *testing.T) { runCase(t, target, sandbox, tc, dataIDs) })
	}
}

func runCase(t *testing.T, target, sandbox string, tc conformanceCase, dataIDs map[string]string) {
	attempts := &attemptLog{}
	c, err := livenessclient.New(target, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(attempts))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	before := vendorCalls(t, sandbox)
	var trailer metadata.MD // the caller's own grpc.Trailer keeps working beside the client's
	start := time.Now()
	var requestID, key, dataID string
	var score float64
	switch tc.RPC {
	case "Detect":
		req := &livenessv1.DetectRequest{}
		fill(t, req, tc.Request)
		var res *livenessclient.DetectResult
		if res, err = c.Detect(context.Background(), req, grpc.Trailer(&trailer)); err == nil {
			requestID, score, key, dataID = res.RequestID, res.GetScore(), res.IdempotencyKey, res.GetLivenessDataId()
		}
	case "AntiHack":
		req := &livenessv1.AntiHackRequest{}
		fill(t, req, tc.Request)
		var res *livenessclient.AntiHackResult
		if res, err = c.AntiHack(context.Background(), req, grpc.Trailer(&trailer)); err == nil {
			requestID, score, key = res.RequestID, res.GetScore(), res.IdempotencyKey
		}
	case "Upload":
		req := &livenessv1.UploadRequest{}
		fill(t, req, tc.Request)
		var res *livenessclient.UploadResult
		if res, err = c.Upload(context.Background(), req, grpc.Trailer(&trailer)); err == nil {
			requestID, key, dataID = res.RequestID, res.IdempotencyKey, res.GetLivenessDataId()
		}
	default:
		t.Fatalf("unknown rpc %q", tc.RPC)
	}
	elapsed := time.Since(start)
	calls := vendorCalls(t, sandbox) - before

	wantCode := codeByName(t, tc.Code)
	if err != nil {
		lerr, ok := err.(*livenessclient.Error)
		if !ok {
			t.Fatalf("error is %T, not *livenessclient.Error: %v", err, err)
		}
		requestID, key = lerr.RequestID, lerr.IdempotencyKey
		if lerr.Code != wantCode {
			t.Errorf("code %s, want %s (%v)", lerr.Code, wantCode, err)
		}
		wantReason := livenessclient.ParseReason(tc.Reason)
		if tc.Reason != "" && wantReason == livenessv1.ErrorReason_ERROR_REASON_UNSPECIFIED {
			t.Fatalf("the table's reason %q is not in the generated enum", tc.Reason)
		}
		if lerr.Reason != wantReason || lerr.ReasonName != tc.Reason || lerr.Domain != livenessclient.Domain {
			t.Errorf("reason %v (%q, domain %q), want %v", lerr.Reason, lerr.ReasonName, lerr.Domain, wantReason)
		}
	} else {
		if wantCode != codes.OK {
			t.Errorf("succeeded, want %s (%s)", wantCode, tc.Reason)
		}
		if tc.Score != nil && math.Abs(score-*tc.Score) > 1e-9 {
			t.Errorf("score %v, want %v", score, *tc.Score)
		}
	}
	// The request id must be the gateway's, from its trailers, not only the one sent.
	if got := trailer.Get(livenessclient.RequestIDKey); requestID == "" || len(got) != 1 || got[0] != requestID {
		t.Errorf("request id %q, trailer says %v", requestID, got)
	}
	// The idempotency key: the request's own, or one the client made for an Upload.
	given, _ := tc.Request["request_id"].(string)
	switch {
	case given != "" && key != given:
		t.Errorf("idempotency key %q, the request's request_id is %q", key, given)
	case given == "" && tc.RPC == "Upload" && !uuidV4.MatchString(key):
		t.Errorf("idempotency key %q, want a UUID v4 the client made", key)
	case given == "" && tc.RPC != "Upload" && key != "":
		t.Errorf("idempotency key %q on a %s without request_id", key, tc.RPC)
	}
	dataIDs[tc.Name] = dataID
	if tc.SameLivenessDataIDAs != "" {
		if want, ok := dataIDs[tc.SameLivenessDataIDAs]; !ok || want == "" || dataID != want {
			t.Errorf("liveness_data_id %q, want %q, case %q's", dataID, want, tc.SameLivenessDataIDAs)
		}
	}
	if calls != tc.VendorCalls {
		t.Errorf("%d vendor calls, want %d", calls, tc.VendorCalls)
	}
	if elapsed < time.Duration(tc.MinElapsedS*float64(time.Second)) {
		t.Errorf("took %s, want at least %vs", elapsed, tc.MinElapsedS)
	}
	attempts.check(t)
	t.Logf("%s: %s, %d attempt(s), %d vendor call(s), %s, request id %s",
		tc.Name, tc.Code, attempts.count(), calls, elapsed.Round(time.Millisecond), requestID)
}

// fill sets the request's fields from the table's JSON object (proto field names; bytes
// fields hold text, as the sandbox vectors are text).
func fill(t *testing.T, msg proto.Message, fields map[string]any) {
	t.Helper()
	m := msg.ProtoReflect()
	for name, value := range fields {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			t.Fatalf("%s has no field %q", m.Descriptor().FullName(), name)
		}
		switch s, isString := value.(string); {
		case fd.Kind() == protoreflect.BytesKind && isString:
			m.Set(fd, protoreflect.ValueOfBytes([]byte(s)))
		default:
			one, err := json.Marshal(map[string]any{name: value})
			if err != nil {
				t.Fatal(err)
			}
			part := msg.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(one, part); err != nil {
				t.Fatalf("field %s: %v", name, err)
			}
			proto.Merge(msg, part)
		}
	}
}

func codeByName(t *testing.T, name string) codes.Code {
	t.Helper()
	var c codes.Code
	if err := c.UnmarshalJSON([]byte(strconv.Quote(name))); err != nil {
		t.Fatalf("code %q: %v", name, err)
	}
	return c
}

func vendorCalls(t *testing.T, sandbox string) int {
	t.Helper()
	resp, err := http.Get(sandbox + "/_sandbox/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Total *int `json:"total"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Total == nil {
		t.Fatalf("sandbox stats: %v (status %s)", err, resp.Status)
	}
	return *body.Total
}

// attemptLog is a stats.Handler that records every attempt of the client's calls: when it
// began, when it ended and the grpc-retry-pushback-ms its trailers carried.
type attemptLog struct {
	mu       sync.Mutex
	attempts []*attempt
}

type attempt struct {
	begin, end time.Time
	pushback   string
}

type attemptKey struct{}

func (l *attemptLog) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context {
	a := &attempt{}
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
	return context.WithValue(ctx, attemptKey{}, a)
}

func (l *attemptLog) HandleRPC(ctx context.Context, s stats.RPCStats) {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	if a == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s := s.(type) {
	case *stats.Begin:
		a.begin = s.BeginTime
	case *stats.InTrailer:
		if v := s.Trailer.Get("grpc-retry-pushback-ms"); len(v) > 0 {
			a.pushback = v[0]
		}
	case *stats.End:
		a.end = s.EndTime
	}
}

func (l *attemptLog) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (l *attemptLog) HandleConn(context.Context, stats.ConnStats)                       {}

func (l *attemptLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.attempts)
}

// check asserts the retry contract on the attempts: none follows a pushback of -1, and none
// begins sooner than the previous one's advised delay after it ended.
func (l *attemptLog) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.attempts) == 0 || len(l.attempts) > 3 {
		t.Errorf("%d attempts, want 1 to 3 (the service config's maxAttempts)", len(l.attempts))
	}
	for i := 1; i < len(l.attempts); i++ {
		prev, next := l.attempts[i-1], l.attempts[i]
		ms, err := strconv.Atoi(prev.pushback)
		if err != nil {
			t.Errorf("attempt %d was followed by another without a pushback (%q)", i, prev.pushback)
			continue
		}
		if ms < 0 {
			t.Errorf("attempt %d was resent after grpc-retry-pushback-ms %d", i, ms)
			continue
		}
		if gap := next.begin.Sub(prev.end); gap < time.Duration(ms)*time.Millisecond {
			t.Errorf("attempt %d began %s after attempt %d, sooner than the advised %d ms", i+1, gap, i, ms)
		}
	}
}
