// Package livenessclient is the Go client of the liveness gateway (liveness.v1.LivenessCheck).
// It wraps the generated client (package livenessv1) with what every caller needs: the
// gateway's service config applied by default (retries steered by the gateway's
// grpc-retry-pushback-ms, retry throttling, message sizes for 5 MiB of liveness data); a
// default deadline of 20 s for calls whose context has none; the gateway's request id
// (x-request-id) on every result and every error; an idempotency key (the request's
// request_id, AIP-155) on every Upload, generated when the request has none, so that any
// resend of it is safe; and every failure as an *Error with the contract's reason enum and
// the RetryInfo, QuotaFailure and BadRequest details decoded.
//
//	c, err := livenessclient.New("localhost:50051",
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
//	res, err := c.Detect(ctx, &livenessv1.DetectRequest{
//		Source: &livenessv1.DetectRequest_LivenessData{LivenessData: data}})
//	var lerr *livenessclient.Error
//	if errors.As(err, &lerr) && lerr.Reason == livenessv1.ErrorReason_OUT_OF_QUOTA {
//		log.Printf("out of quota (request %s)", lerr.RequestID)
//	}
//
// The client makes no retries of its own: gRPC's retry machinery, configured by the service
// config, resends only what the gateway says may be resent, after the delay it advises.
package livenessclient

import (
	"context"
	"crypto/rand"
	_ "embed" // the service config
	"encoding/hex"
	"errors"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"

	livenessv1 "github.com/liveness-gateway/liveness-gateway/clients/go/livenessv1"
)

// Version is this client's version; its release tag is "clients/go/v" + Version.
const Version = "1.1.0"

// MaxMessageBytes is the largest gRPC message the client sends or receives: the gateway
// accepts 5 MiB of liveness data, and the transport must not refuse it first.
const MaxMessageBytes = 6 * 1024 * 1024

// DefaultTimeout is the deadline of a call whose context has none: the gateway's worst
// case (its own vendor attempts and the resends the service config allows) fits in it.
// It is also the service config's timeout.
const DefaultTimeout = 20 * time.Second

// RequestIDKey is the metadata key of the request id, in both directions: the gateway
// takes a caller's x-request-id (up to 128 printable characters) and returns it in its
// trailing metadata.
const RequestIDKey = "x-request-id"

// serviceConfig is protos/liveness/v1/service_config.json, copied by `make gen-client-go`;
// `make build-client-go` fails when the copy differs.
//
//go:embed service_config.json
var serviceConfig string

// ServiceConfig returns the gateway's service config (JSON), the one DialOptions applies.
func ServiceConfig() string { return serviceConfig }

// DialOptions returns the options every connection to the gateway needs: the service config
// and the message sizes. New adds them; use them directly when building a grpc.ClientConn
// yourself (livenessv1.NewLivenessCheckClient on it then has the same retry behaviour).
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		),
	}
}

// Client calls liveness.v1.LivenessCheck. It is safe for concurrent use; share one per
// gateway (retry throttling is per connection). Every error it returns is an *Error.
type Client struct {
	conn *grpc.ClientConn
	stub livenessv1.LivenessCheckClient
}

// New connects to target ("host:port" or any gRPC target). opts must include transport
// credentials: grpc.WithTransportCredentials(insecure.NewCredentials()) for plaintext,
// credentials.NewTLS(cfg) for TLS or mTLS; add grpc.WithPerRPCCredentials(BearerToken(t))
// for a bearer token. opts are applied after DialOptions, so they can override them.
func New(target string, opts ...grpc.DialOption) (*Client, error) {
	base := append(DialOptions(), grpc.WithStatsHandler(pushbackWatch{}))
	conn, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, stub: livenessv1.NewLivenessCheckClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stub returns the generated client on the same connection, for options this wrapper omits.
func (c *Client) Stub() livenessv1.LivenessCheckClient { return c.stub }

// UploadResult is an UploadResponse with the gateway's request id and the idempotency key
// the call sent.
type UploadResult struct {
	*livenessv1.UploadResponse
	RequestID string
	// IdempotencyKey is the request_id the Upload sent: the request's own, or the one the
	// client generated for it. Resending the same upload with it (req.RequestId) returns
	// this result again, without a second vendor object.
	IdempotencyKey string
}

// DetectResult is a DetectResponse with the gateway's request id and the idempotency key
// the call sent ("" when the request had none).
type DetectResult struct {
	*livenessv1.DetectResponse
	RequestID      string
	IdempotencyKey string
}

// AntiHackResult is an AntiHackResponse with the gateway's request id and the idempotency
// key the call sent ("" when the request had none).
type AntiHackResult struct {
	*livenessv1.AntiHackResponse
	RequestID      string
	IdempotencyKey string
}

// Upload stores liveness data at the vendor and returns its id for Detect. When
// req.RequestId is empty, the call sends a fresh idempotency key (NewIdempotencyKey) on a
// copy of req, the same on every attempt; result.IdempotencyKey and the error's
// IdempotencyKey give it back, for a resend of the same upload. req itself is not modified.
func (c *Client) Upload(ctx context.Context, req *livenessv1.UploadRequest, opts ...grpc.CallOption) (*UploadResult, error) {
	key := req.GetRequestId()
	if key == "" {
		key = NewIdempotencyKey()
		if req == nil {
			req = &livenessv1.UploadRequest{} // the gateway answers INVALID_REQUEST, as for nil
		} else {
			req = proto.CloneOf(req)
		}
		req.RequestId = key
	}
	resp, id, err := invoke(ctx, c.stub.Upload, req, key, opts)
	if err != nil {
		return nil, err
	}
	return &UploadResult{UploadResponse: resp, RequestID: id, IdempotencyKey: key}, nil
}

// Detect scores liveness data with LinkFace. It sends an idempotency key only when
// req.RequestId is set.
func (c *Client) Detect(ctx context.Context, req *livenessv1.DetectRequest, opts ...grpc.CallOption) (*DetectResult, error) {
	key := req.GetRequestId()
	resp, id, err := invoke(ctx, c.stub.Detect, req, key, opts)
	if err != nil {
		return nil, err
	}
	return &DetectResult{DetectResponse: resp, RequestID: id, IdempotencyKey: key}, nil
}

// AntiHack scores liveness data with AccuAuth. It sends an idempotency key only when
// req.RequestId is set.
func (c *Client) AntiHack(ctx context.Context, req *livenessv1.AntiHackRequest, opts ...grpc.CallOption) (*AntiHackResult, error) {
	key := req.GetRequestId()
	resp, id, err := invoke(ctx, c.stub.AntiHack, req, key, opts)
	if err != nil {
		return nil, err
	}
	return &AntiHackResult{AntiHackResponse: resp, RequestID: id, IdempotencyKey: key}, nil
}

// invoke makes one call: the default deadline when ctx has none, a request id sent with it
// (so that every attempt gRPC makes carries the same one) unless the caller set one, and
// the request id the gateway returned in its trailers. key is the request's request_id
// (idempotency key), "" for none: a malformed one is refused before anything is sent, and
// an error carries it. When the gateway advises a resend
// later than the deadline allows, the call ends at once with the gateway's answer (see
// pushbackWatch) instead of waiting out the deadline for a resend that cannot happen.
func invoke[Req, Resp any](ctx context.Context,
	call func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req, key string, opts []grpc.CallOption,
) (Resp, string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	sent := ""
	if md, _ := metadata.FromOutgoingContext(ctx); len(md.Get(RequestIDKey)) > 0 {
		sent = md.Get(RequestIDKey)[0]
	} else {
		sent = newRequestID()
		ctx = metadata.AppendToOutgoingContext(ctx, RequestIDKey, sent)
	}
	if key != "" && !ValidIdempotencyKey(key) {
		var zero Resp
		return zero, sent, invalidKeyError(key, sent)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	state := &callState{cancel: cancel}
	ctx = context.WithValue(ctx, callStateKey{}, state)

	var trailer metadata.MD
	resp, err := call(ctx, req, append(opts[:len(opts):len(opts)], grpc.Trailer(&trailer))...)
	if err != nil && errors.Is(context.Cause(ctx), errResendPastDeadline) {
		err, trailer = state.lastErr, state.lastTrailer
	}
	id := sent
	if got := trailer.Get(RequestIDKey); len(got) > 0 && got[0] != "" {
		id = got[0]
	}
	if err != nil {
		e := *FromError(err) // a copy: never mutate an *Error the caller may hold
		e.RequestID = id
		e.IdempotencyKey = key
		return resp, id, &e
	}
	return resp, id, nil
}

// errResendPastDeadline is the cause pushbackWatch cancels a call with.
var errResendPastDeadline = errors.New("livenessclient: the advised resend falls after the deadline")

type callStateKey struct{}

// callState is what pushbackWatch records of a call's last failed attempt.
type callState struct {
	cancel      context.CancelCauseFunc
	mu          sync.Mutex
	lastErr     error
	lastTrailer metadata.MD
}

// pushbackWatch is a stats handler that sees every attempt gRPC's retry machinery makes.
// gRPC waits out an advised resend delay (grpc-retry-pushback-ms) even when it ends past
// the call's deadline, and then reports only DEADLINE_EXCEEDED: the caller waits for
// nothing and loses the gateway's reason. When an attempt fails with a pushback that the
// deadline cannot fit, the watch cancels the call, and invoke returns that attempt's error.
// It never causes an attempt; it only ends a wait that could not lead to one.
type pushbackWatch struct{}

func (pushbackWatch) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (pushbackWatch) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}
func (pushbackWatch) HandleConn(context.Context, stats.ConnStats) {}

func (pushbackWatch) HandleRPC(ctx context.Context, s stats.RPCStats) {
	state, _ := ctx.Value(callStateKey{}).(*callState)
	if state == nil {
		return // a call made through Stub() or a connection built with DialOptions()
	}
	switch s := s.(type) {
	case *stats.Begin: // attempts of a unary call follow one another
		state.mu.Lock()
		state.lastTrailer = nil
		state.mu.Unlock()
	case *stats.InTrailer:
		state.mu.Lock()
		state.lastTrailer = s.Trailer
		state.mu.Unlock()
	case *stats.End:
		if s.Error == nil {
			return
		}
		state.mu.Lock()
		state.lastErr = s.Error
		trailer := state.lastTrailer
		state.mu.Unlock()
		values := trailer.Get("grpc-retry-pushback-ms")
		if len(values) == 0 {
			return
		}
		ms, err := strconv.ParseInt(values[0], 10, 64)
		deadline, ok := ctx.Deadline()
		if err == nil && ms >= 0 && ok && time.Now().Add(time.Duration(ms)*time.Millisecond).After(deadline) {
			state.cancel(errResendPastDeadline)
		}
	}
}

// newRequestID returns 32 hex digits, the gateway's own format.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// BearerToken returns per-RPC credentials that send "authorization: Bearer <token>" with
// every call, for grpc.WithPerRPCCredentials. They require a TLS connection.
func BearerToken(token string) credentials.PerRPCCredentials { return bearerToken(token) }

type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }
