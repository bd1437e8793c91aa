package rbd

import (
	"context"
	"errors"
	"fmt"

	"github.com/ceph/go-ceph/rados"
)

// session is one RPC's use of a cluster: a cached connection plus the pool
// contexts it opened. close returns everything.
type session struct {
	cluster ClusterInfo
	conn    *rados.Conn
	release func()
	ioctxs  map[string]*rados.IOContext
}

// openSession connects to clusterID with the request's secrets, or the
// controller credentials when the request carries none.
func (cs *ControllerServer) openSession(
	ctx context.Context, clusterID string, secrets map[string]string,
) (*session, error) {
	info, err := cs.clusters.lookup(clusterID)
	if err != nil {
		return nil, err
	}
	creds, err := cs.credentials(secrets)
	if err != nil {
		return nil, err
	}
	return cs.sessionFor(ctx, info, creds)
}

func (cs *ControllerServer) sessionFor(ctx context.Context, info ClusterInfo, creds Credentials) (*session, error) {
	conn, release, err := cs.conns.get(ctx, info.Monitors, creds)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", info.ClusterID, err)
	}
	return &session{cluster: info, conn: conn, release: release, ioctxs: make(map[string]*rados.IOContext)}, nil
}

// credentials picks the request's secrets, falling back to the
// controller-wide ones (--controller-secret-dir) when the request has none.
func (cs *ControllerServer) credentials(secrets map[string]string) (Credentials, error) {
	if len(secrets) > 0 {
		return CredentialsFromSecrets(secrets)
	}
	if cs.opts.ControllerSecretDir == "" {
		return Credentials{}, fmt.Errorf(
			"%w: the request carries no secrets (%s/%s) and no controller credentials are configured",
			ErrMissingCredentials, secretUserID, secretUserKey)
	}
	return credentialsFromDir(cs.opts.ControllerSecretDir)
}

// ioctx opens (once per session) the IO context of a pool by name.
func (s *session) ioctx(pool string) (*rados.IOContext, error) {
	if io, ok := s.ioctxs[pool]; ok {
		return io, nil
	}
	io, err := s.conn.OpenIOContext(pool)
	if err != nil {
		if isNotFound(err) || errors.Is(err, rados.ErrNotFound) {
			return nil, fmt.Errorf("%w: pool %q does not exist in cluster %q",
				ErrPoolNotFound, pool, s.cluster.ClusterID)
		}
		return nil, fmt.Errorf("open pool %q: %w", pool, err)
	}
	s.ioctxs[pool] = io
	return io, nil
}

// poolID looks a pool up by name; a missing pool is ErrPoolNotFound.
func (s *session) poolID(pool string) (int64, error) {
	id, err := s.conn.GetPoolByName(pool)
	if err != nil {
		if isNotFound(err) {
			return 0, fmt.Errorf("%w: pool %q does not exist in cluster %q", ErrPoolNotFound, pool, s.cluster.ClusterID)
		}
		return 0, fmt.Errorf("look up pool %q: %w", pool, err)
	}
	return id, nil
}

// resolve finds the pool of a decoded ID and opens it.
func (s *session) resolve(id VolumeID) (imageRef, error) {
	pool, err := id.PoolName(s.conn)
	if err != nil {
		return imageRef{}, err
	}
	io, err := s.ioctx(pool)
	if err != nil {
		if errors.Is(err, ErrPoolNotFound) {
			return imageRef{}, fmt.Errorf("%w: %v", id.notFound(), err)
		}
		return imageRef{}, err
	}
	return imageRef{id: id, pool: pool, io: io}, nil
}

func (s *session) close() {
	for _, io := range s.ioctxs {
		io.Destroy()
	}
	s.ioctxs = nil
	s.release()
}

// imageRef is a resolved image: its ID, current pool name and IO context.
type imageRef struct {
	id   VolumeID
	pool string
	io   *rados.IOContext
}

// lockKey is the in-process operation lock key of the image.
func (r imageRef) lockKey() string {
	return fmt.Sprintf("image/%s/%d/%s", r.id.ClusterID, r.id.PoolID, r.id.Image)
}
