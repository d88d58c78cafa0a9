import type pg from 'pg';

/** A pool or a client: every src/db function takes one as its first argument. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.ClientBase, 'query'>;
