/*
 * npz.h - NumPy .npz archives: a zip of .npy (format 1.0) arrays as
 * numpy.savez / numpy.savez_compressed write them, plus plain members
 * (numpy.load returns the bytes of a member that is not an .npy; topicd's
 * model keeps its metadata so, as a JSON text).
 *
 * Writer: builds the archive in memory, each member stored or deflated
 * (zlib's raw deflate, zip method 8); C-order little-endian arrays of the
 * dtypes below; at most TM_NPZ_MAX_MEMBERS members and 4 GiB in all (no
 * zip64). Timestamps are fixed (1980-01-01), so equal inputs give equal
 * bytes.
 *
 * Reader: reads topicd's own files and what numpy.savez(_compressed) writes
 * with the same dtypes, strictly: every offset and length is checked against
 * the buffer, the members' sizes (as the central directory states them)
 * against the caller's cap before anything is allocated, each member's CRC
 * and inflated length, and the .npy header (version 1.0, 'descr',
 * 'fortran_order': False, 'shape', each once) against the data's length.
 * Bad input is TM_EPARSE (malformed) or TM_ETOOBIG (past a cap) with a
 * message naming the member; never a crash. The host must be little-endian
 * (as every platform topicd builds on).
 * Thread-safety: one owner at a time per writer or archive; reentrant.
 */
#ifndef TM_API_NPZ_H
#define TM_API_NPZ_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Element types: '<f8', '<f4', '<i8', '|u1'; RAW is a member that is not
 * an .npy (its bytes as they are, 1-D). */
enum tm_npz_dtype { TM_NPZ_F64, TM_NPZ_F32, TM_NPZ_I64, TM_NPZ_U8, TM_NPZ_RAW };

#define TM_NPZ_MAX_NDIM 4
#define TM_NPZ_MAX_MEMBERS 64
/* The bytes of a member's name (".npy" included), NUL included. */
#define TM_NPZ_NAME_SIZE 64

/* Bytes per element of dtype (RAW: 1). */
size_t tm_npz_dtype_size(enum tm_npz_dtype dtype);
/* numpy's name of dtype ("float64", ..., "bytes" for RAW). */
const char *tm_npz_dtype_name(enum tm_npz_dtype dtype);

/* ---- writing ---- */

struct tm_npz_writer;

/*
 * A new empty archive in *out (tm_npz_writer_free). level: 0 stores every
 * member, 1..9 deflates at zlib's level. cap: the most bytes the archive may
 * grow to (0: 4 GiB - 1, the zip limit); an add past it is TM_ETOOBIG.
 */
tm_status tm_npz_writer_new(int level, size_t cap, struct tm_npz_writer **out, char *err);
void tm_npz_writer_free(struct tm_npz_writer *w);

/*
 * Adds array name (member name.npy; name: [A-Za-z0-9_.-], 1 to
 * TM_NPZ_NAME_SIZE - 5 bytes, not added before) of ndim (0 to
 * TM_NPZ_MAX_NDIM) dimensions shape[] (each >= 0), C order: data holds
 * prod(shape) elements of dtype (borrowed, may be NULL when that is 0).
 * dtype RAW is refused here. Errors: TM_EINVAL, TM_ETOOBIG, TM_ENOMEM.
 * After an error the writer only accepts tm_npz_writer_free.
 */
tm_status tm_npz_writer_add(struct tm_npz_writer *w, const char *name, enum tm_npz_dtype dtype,
                            int ndim, const int64_t *shape, const void *data, char *err);
/* Adds a plain member (name as above, used as it is: "metadata.json") of
 * len bytes (borrowed). */
tm_status tm_npz_writer_add_raw(struct tm_npz_writer *w, const char *name, const void *bytes,
                                size_t len, char *err);
/* Ends the archive: *out is returned owned (tm_free), *len bytes; the
 * writer is empty then and only accepts tm_npz_writer_free. */
tm_status tm_npz_writer_finish(struct tm_npz_writer *w, unsigned char **out, size_t *len,
                               char *err);

/* ---- reading ---- */

/* A member as read: a view into the archive, valid until tm_npz_free. */
struct tm_npz_member {
    char name[TM_NPZ_NAME_SIZE]; /* as numpy.load's keys: ".npy" dropped for arrays */
    enum tm_npz_dtype dtype;
    int ndim;                       /* RAW: 1 */
    int64_t shape[TM_NPZ_MAX_NDIM]; /* ndim entries */
    int64_t count;                  /* elements: prod(shape) (RAW: bytes) */
    const void *data;               /* count elements, aligned for dtype; NULL when 0 */
};

struct tm_npz;

/*
 * Reads len bytes (borrowed; not kept) into *out (tm_npz_free). max_bytes:
 * the most bytes all members may inflate to together (checked against the
 * sizes the archive states, before inflating). Errors: TM_EPARSE, TM_ETOOBIG,
 * TM_ENOMEM, each with a message ("npz: member components.npy: ...").
 */
tm_status tm_npz_read(const void *bytes, size_t len, size_t max_bytes, struct tm_npz **out,
                      char *err);
void tm_npz_free(struct tm_npz *z);

int tm_npz_count(const struct tm_npz *z);
/* Member i (0 <= i < tm_npz_count), in the archive's order. */
const struct tm_npz_member *tm_npz_member_at(const struct tm_npz *z, int i);
/* The member named name (numpy.load's key), or NULL. */
const struct tm_npz_member *tm_npz_find(const struct tm_npz *z, const char *name);

/*
 * The member named name, checked: of dtype and ndim dimensions, and where
 * shape is not NULL, shape[i] each (an entry < 0 matches any length).
 * TM_ENOTFOUND when absent ("npz: no member idf"), TM_EPARSE otherwise
 * ("npz: components: float32 of shape (3, 5), expected float64 of (3, 6)").
 */
tm_status tm_npz_get(const struct tm_npz *z, const char *name, enum tm_npz_dtype dtype, int ndim,
                     const int64_t *shape, const struct tm_npz_member **out, char *err);

#endif
