-- Deterministic data generator for moment: demo, tests and benchmarks.
--
--   \i scripts/generate.sql
--   SELECT * FROM moment_gen.generate(companies => 100, time_records_per_company => 10000, seed => 1);
--
-- The first company is 'cloudware', the others 'company0002', 'company0003', ...
-- (codes that already exist are skipped).  The same arguments give the same
-- rows (ids depend on the sequences' state).  Not part of the extension.

CREATE SCHEMA IF NOT EXISTS moment_gen;

-- A pseudo-random number in [0, 1), a pure function of (seed, n, salt).
CREATE OR REPLACE FUNCTION moment_gen.rnd(seed integer, n bigint, salt integer)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
	SELECT (hashint8(n * 1000003 + seed::bigint * 7919 + salt::bigint * 104729)::bigint & 2147483647)::float8
		   / 2147483648.0
$$;

CREATE OR REPLACE FUNCTION moment_gen.generate(companies integer,
											   time_records_per_company integer,
											   seed integer DEFAULT 1,
											   users_per_company integer DEFAULT 10,
											   customers_per_company integer DEFAULT 20,
											   projects_per_company integer DEFAULT 50,
											   offers_per_company integer DEFAULT 40)
RETURNS TABLE (company_codes text[], time_records bigint)
LANGUAGE plpgsql
AS $$
DECLARE
	words text[] := ARRAY['Nordic', 'Fjord', 'Aurora', 'Viking', 'Polar', 'Granite', 'Harbor', 'Summit',
						  'Birch', 'Glacier', 'Coastal', 'Midnight', 'Timber', 'Silver', 'Arctic', 'Pine'];
	kinds text[] := ARRAY['Consulting', 'Logistics', 'Energy', 'Media', 'Health', 'Retail', 'Marine', 'Software'];
	first_names text[] := ARRAY['Ola', 'Kari', 'Per', 'Ingrid', 'Lars', 'Sofie', 'Emil', 'Nora',
								'Jonas', 'Ida', 'Magnus', 'Thea', 'Henrik', 'Maja', 'Sindre', 'Hedda'];
	last_names text[] := ARRAY['Hansen', 'Johansen', 'Olsen', 'Larsen', 'Andersen', 'Pedersen',
							   'Nilsen', 'Kristiansen', 'Jensen', 'Karlsen', 'Berg', 'Haugen'];
	codes text[];
	fast boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = current_user);
BEGIN
	-- rows are consistent by construction: skip per-row foreign key checks when we may
	IF fast THEN
		SET LOCAL session_replication_role = replica;
	END IF;

	SELECT array_agg(code ORDER BY n) INTO codes
	  FROM (SELECT n, CASE WHEN n = 1 THEN 'cloudware' ELSE 'company' || lpad(n::text, 4, '0') END AS code
			  FROM generate_series(1, companies) n) c
	 WHERE NOT EXISTS (SELECT 1 FROM moment.companies x WHERE x.code = c.code);

	CREATE TEMP TABLE gen_companies ON COMMIT DROP AS
	WITH inserted AS (
		INSERT INTO moment.companies (code, name, currency_code)
		SELECT code, initcap(code) || ' AS', 'NOK' FROM unnest(codes) code
		RETURNING id
	)
	SELECT id AS company_id, row_number() OVER (ORDER BY id) AS cn FROM inserted;

	CREATE TEMP TABLE gen_users ON COMMIT DROP AS
	WITH inserted AS (
		INSERT INTO moment.user_accounts (company_id, name, email, active)
		SELECT c.company_id,
			   first_names[1 + (u % 16)] || ' ' || last_names[1 + ((u * 7 + c.cn) % 12)::int],
			   lower(first_names[1 + (u % 16)]) || u || '@example.com',
			   moment_gen.rnd(seed, c.cn * 1000 + u, 1) > 0.1
		  FROM gen_companies c, generate_series(1, users_per_company) u
		 ORDER BY c.company_id, u
		RETURNING company_id, id
	)
	SELECT company_id, id, row_number() OVER (PARTITION BY company_id ORDER BY id) AS n FROM inserted;

	CREATE TEMP TABLE gen_customers ON COMMIT DROP AS
	WITH inserted AS (
		INSERT INTO moment.customers (company_id, customer_number, name, organization_number, email,
									  currency_code, customer_state)
		SELECT c.company_id, 'C' || lpad(k::text, 5, '0'),
			   words[1 + (k % 16)] || ' ' || kinds[1 + ((k + c.cn) % 8)::int] || ' ' || k,
			   (900000000 + (moment_gen.rnd(seed, c.cn * 100000 + k, 2) * 99999999)::int)::text,
			   'post@customer' || k || '.no',
			   CASE WHEN k % 7 = 0 THEN 'EUR' WHEN k % 11 = 0 THEN 'SEK' ELSE 'NOK' END,
			   CASE WHEN k % 13 = 0 THEN 'inactive' WHEN k % 17 = 0 THEN 'potential' ELSE 'active' END
		  FROM gen_companies c, generate_series(1, customers_per_company) k
		 ORDER BY c.company_id, k
		RETURNING company_id, id
	)
	SELECT company_id, id, row_number() OVER (PARTITION BY company_id ORDER BY id) AS n FROM inserted;

	CREATE TEMP TABLE gen_projects ON COMMIT DROP AS
	WITH inserted AS (
		INSERT INTO moment.projects (company_id, customer_id, project_number, name, project_state,
									 price_model, start_date, end_date, currency_code, fixed_price)
		SELECT c.company_id, cu.id, 'P' || lpad(p::text, 5, '0'),
			   (ARRAY['Website', 'Migration', 'Audit', 'Support', 'Integration', 'Analytics', 'Training', 'Redesign'])[1 + (p % 8)]
				   || ' ' || p,
			   (ARRAY['notStarted', 'inProgress', 'inProgress', 'inProgress', 'finished', 'archived'])[1 + (p % 6)],
			   (ARRAY['hourlyRate', 'hourlyRate', 'fixedPrice', 'subscription', 'nonBillable'])[1 + (p % 5)],
			   date '2024-01-01' + (moment_gen.rnd(seed, c.cn * 100000 + p, 3) * 365)::int,
			   date '2024-01-01' + 365 + (moment_gen.rnd(seed, c.cn * 100000 + p, 4) * 365)::int,
			   'NOK',
			   CASE WHEN p % 5 = 2 THEN round((moment_gen.rnd(seed, c.cn * 100000 + p, 5) * 500000)::numeric, 2) END
		  FROM gen_companies c
		  CROSS JOIN generate_series(1, projects_per_company) p
		  JOIN gen_customers cu ON cu.company_id = c.company_id
							   AND cu.n = 1 + (moment_gen.rnd(seed, c.cn * 100000 + p, 6) * customers_per_company)::int % customers_per_company
		 ORDER BY c.company_id, p
		RETURNING company_id, id
	)
	SELECT company_id, id, row_number() OVER (PARTITION BY company_id ORDER BY id) AS n FROM inserted;

	INSERT INTO moment.offers (company_id, customer_id, project_id, offer_number, name, offer_state,
							   issue_date, valid_until, currency_code, exchange_rate, total_sum)
	SELECT c.company_id, cu.id, CASE WHEN o % 3 = 0 THEN NULL ELSE pr.id END,
		   'O' || lpad(o::text, 5, '0'),
		   'Offer ' || o || ': ' || (ARRAY['licences', 'consulting', 'support agreement', 'workshop', 'implementation'])[1 + (o % 5)],
		   (ARRAY['draft', 'readyToSend', 'accepted', 'rejected'])[1 + (o % 4)],
		   date '2024-01-01' + (moment_gen.rnd(seed, c.cn * 100000 + o, 7) * 700)::int,
		   date '2024-01-01' + 30 + (moment_gen.rnd(seed, c.cn * 100000 + o, 7) * 700)::int,
		   CASE WHEN o % 4 = 0 THEN 'EUR' ELSE 'NOK' END,
		   CASE WHEN o % 4 = 0 THEN 11.5 ELSE 1 END,
		   round((1000 + moment_gen.rnd(seed, c.cn * 100000 + o, 8) * 250000)::numeric, 2)
	  FROM gen_companies c
	  CROSS JOIN generate_series(1, offers_per_company) o
	  JOIN gen_customers cu ON cu.company_id = c.company_id
						   AND cu.n = 1 + (moment_gen.rnd(seed, c.cn * 100000 + o, 9) * customers_per_company)::int % customers_per_company
	  JOIN gen_projects pr ON pr.company_id = c.company_id
						  AND pr.n = 1 + (moment_gen.rnd(seed, c.cn * 100000 + o, 10) * projects_per_company)::int % projects_per_company
	 ORDER BY c.company_id, o;

	-- two activities a project, two tasks an activity, and a membership of
	-- every user on every project (role "Default"; every fifth also "Lead")
	CREATE TEMP TABLE gen_extensions ON COMMIT DROP AS
	WITH inserted AS (
		INSERT INTO moment.project_extensions (company_id, project_id, project_extension_number, name,
											   project_extension_state, billable)
		SELECT pr.company_id, pr.id, 'A' || lpad((pr.n * 2 + a)::text, 5, '0'),
			   (ARRAY['Development', 'Meetings'])[1 + a], CASE WHEN pr.n % 10 = 0 AND a = 1 THEN 'closed' ELSE 'open' END,
			   a = 0
		  FROM gen_projects pr, generate_series(0, 1) a
		 ORDER BY pr.company_id, pr.n, a
		RETURNING company_id, id, project_id
	)
	SELECT company_id, id, project_id, row_number() OVER (PARTITION BY company_id, project_id ORDER BY id) - 1 AS a
	  FROM inserted;

	CREATE TEMP TABLE gen_tasks ON COMMIT DROP AS
	WITH inserted AS (
		INSERT INTO moment.tasks (company_id, project_extension_id, task_number, name, task_state)
		SELECT e.company_id, e.id, 'T' || e.id || '-' || t, (ARRAY['Backend', 'Frontend'])[1 + t], 'open'
		  FROM gen_extensions e, generate_series(0, 1) t
		 ORDER BY e.company_id, e.id, t
		RETURNING company_id, id, project_extension_id
	)
	SELECT company_id, id, project_extension_id,
		   row_number() OVER (PARTITION BY company_id, project_extension_id ORDER BY id) - 1 AS t
	  FROM inserted;

	CREATE TEMP TABLE gen_memberships ON COMMIT DROP AS
	WITH inserted AS (
		INSERT INTO moment.project_memberships (company_id, project_id, user_account_id,
												project_membership_role_name, hourly_rate)
		SELECT pr.company_id, pr.id, us.id, r.role_name, CASE WHEN r.role_name = 'Lead' THEN 1450 ELSE 1100 END
		  FROM gen_projects pr
		  JOIN gen_users us ON us.company_id = pr.company_id
		  CROSS JOIN (VALUES ('Default'), ('Lead')) r(role_name)
		 WHERE r.role_name = 'Default' OR (pr.n + us.n) % 5 = 0
		 ORDER BY pr.company_id, pr.id, us.id, r.role_name
		RETURNING company_id, id, project_id, user_account_id, project_membership_role_name
	)
	SELECT company_id, id, project_id, user_account_id FROM inserted
	 WHERE project_membership_role_name = 'Default';

	INSERT INTO moment.time_records (company_id, project_id, user_account_id, project_membership_id,
									 project_extension_id, task_id,
									 time_record_date, minutes, description, internal_note, billable, approved)
	SELECT c.company_id, pr.id, us.id, m.id, e.id, CASE WHEN r % 3 = 0 THEN NULL ELSE tk.id END,
		   date '2024-01-01' + (moment_gen.rnd(seed, c.cn * 10000000 + r, 11) * 730)::int,
		   15 * (1 + (moment_gen.rnd(seed, c.cn * 10000000 + r, 12) * 32)::int),
		   (ARRAY['Meeting', 'Development', 'Code review', 'Planning', 'Testing', 'Documentation', 'Support', 'Travel'])[1 + (r % 8)],
		   CASE WHEN r % 10 = 0 THEN 'Check with project lead' END,
		   r % 9 <> 0,
		   r % 4 = 0
	  FROM gen_companies c
	  CROSS JOIN generate_series(1, time_records_per_company) r
	  JOIN gen_projects pr ON pr.company_id = c.company_id
						  AND pr.n = 1 + (moment_gen.rnd(seed, c.cn * 10000000 + r, 13) * projects_per_company)::int % projects_per_company
	  JOIN gen_users us ON us.company_id = c.company_id
					   AND us.n = 1 + (moment_gen.rnd(seed, c.cn * 10000000 + r, 14) * users_per_company)::int % users_per_company
	  JOIN gen_memberships m ON m.company_id = c.company_id AND m.project_id = pr.id AND m.user_account_id = us.id
	  JOIN gen_extensions e ON e.company_id = c.company_id AND e.project_id = pr.id AND e.a = r % 2
	  JOIN gen_tasks tk ON tk.company_id = c.company_id AND tk.project_extension_id = e.id AND tk.t = (r / 2) % 2
	 ORDER BY c.company_id, r;

	company_codes := codes;
	time_records := (SELECT count(*) FROM gen_companies) * time_records_per_company::bigint;
	RETURN NEXT;
END
$$;
