package enrich

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// listServer answers the container listing as a containerd of some version
// would: streamErr (nil: streams the containers) for ListStream, and the
// whole listing from List.
type listServer struct {
	containersapi.UnimplementedContainersServer
	streamErr error
	list      []*containersapi.Container
}

func (s *listServer) ListStream(_ *containersapi.ListContainersRequest, st containersapi.Containers_ListStreamServer) error {
	if s.streamErr != nil {
		return s.streamErr
	}
	for _, c := range s.list {
		if err := st.Send(&containersapi.ListContainerMessage{Container: c}); err != nil {
			return err
		}
	}
	return nil
}

func (s *listServer) List(context.Context, *containersapi.ListContainersRequest) (*containersapi.ListContainersResponse, error) {
	return &containersapi.ListContainersResponse{Containers: s.list}, nil
}

// TestListContainers covers the listing's fallback: a containerd without
// the streaming call (Unimplemented, as before 1.5) is asked for the whole
// listing at once; any other error of the stream is returned. A fake
// server: the real containerd of the other tests streams.
func TestListContainers(t *testing.T) {
	list := []*containersapi.Container{{ID: "a"}, {ID: "b"}}
	for _, tc := range []struct {
		name      string
		streamErr error
		want      codes.Code // OK: the listing
	}{
		{"streamed", nil, codes.OK},
		{"no streaming call", status.Error(codes.Unimplemented, "unknown method ListStream"), codes.OK},
		{"stream refused", status.Error(codes.PermissionDenied, "denied"), codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			socket := filepath.Join(t.TempDir(), "ctd.sock")
			l, err := net.Listen("unix", socket)
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			containersapi.RegisterContainersServer(srv, &listServer{streamErr: tc.streamErr, list: list})
			go srv.Serve(l)
			t.Cleanup(srv.Stop)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := dial(ctx, socket, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := c.listContainers(withNamespace(ctx, "default"))
			if status.Code(err) != tc.want {
				t.Fatalf("listContainers: %v, want code %v", err, tc.want)
			}
			if tc.want == codes.OK && (len(got) != 2 || got[0].ID != "a" || got[1].ID != "b") {
				t.Errorf("listContainers = %v", got)
			}
		})
	}
}
