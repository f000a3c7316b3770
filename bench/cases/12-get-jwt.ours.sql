-- 12 ours: moment.get of case 02 under a fresh request.jwt.claims per call
-- as PostgREST sends a request: role and claims set for the transaction, the claims different on
-- every call (another user, another expiry); moment.company is not set, the "company" claim selects it
\set id random(:tr_lo, :tr_hi)
\set n random(1, 1000000000)
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_web1', true),
       set_config('request.jwt.claims', '{"role": "bench_web1", "company": "@@bench_code@@", "sub": "user-' || :n || '", "exp": ' || (1900000000 + :n::bigint) || '}', true);
SELECT moment.get('timeRecords', :id, 'base+project.name+project.customer.name+userAccount.name');
COMMIT;
\endpipeline
