/*
 * webhook.h: change notifications (contract section 16).
 *
 * webhook.c queues: statement triggers on every entity table write one
 * delivery per changed row and matching webhook into
 * moment.webhook_deliveries, in the changing transaction (an outbox), and
 * the SQL functions create_webhook, drop_webhook and redeliver manage the
 * rows.  worker.c delivers: one background worker (when moment is in
 * shared_preload_libraries) posts the pending deliveries with libcurl.
 */
#ifndef MOMENT_WEBHOOK_H
#define MOMENT_WEBHOOK_H

#include "postgres.h"

/* settings (webhook.c), all superuser-only */
extern char *moment_webhook_database;
extern char *moment_webhook_allowed_hosts;
extern int	moment_webhook_timeout;	/* ms */
extern int	moment_webhook_retry_delay; /* ms */
extern int	moment_webhook_retry_max_delay; /* ms */
extern int	moment_webhook_max_attempts;

/* webhook.c: the settings and the commit hook that wakes the worker (_PG_init) */
extern void webhook_init(void);

/*
 * Whether a webhook URL may be used: http or https, an optional port, no
 * user info, a host listed in moment.webhook_allowed_hosts.  NULL when it
 * may; otherwise why not (and *hint, when not NULL, a hint or NULL).  *host
 * (when host is not NULL) receives the host as written, without the
 * brackets of an IPv6 address, when the URL could be parsed that far.
 */
extern const char *webhook_url_problem(const char *url, char **host, const char **hint);

/* worker.c: the background worker, registered only from shared_preload_libraries (_PG_init) */
extern void webhook_worker_register(void);
/* Wakes the worker, if it runs: new deliveries are pending. */
extern void webhook_wake_worker(void);

#endif							/* MOMENT_WEBHOOK_H */
