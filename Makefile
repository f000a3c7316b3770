# moment: Moment's REST conventions (includes, CRUD, batch, limits) as a
# PostgreSQL extension.  Built with PGXS.

EXTENSION = moment
MODULE_big = moment
DATA = moment--0.1.0.control sql/moment--0.1.0.sql sql/moment--0.2.0.sql sql/moment--0.1.0--0.2.0.sql \
	sql/moment--0.1.0-restored--0.2.0.sql

OBJS = \
	src/moment.o \
	src/util.o \
	src/registry.o \
	src/tenant.o \
	src/plancache.o \
	src/shape.o \
	src/include.o \
	src/filter.o \
	src/query.o \
	src/read.o \
	src/write.o \
	src/batch.o \
	src/describe.o \
	src/errors.o \
	src/report.o \
	src/openapi.o \
	src/triggers.o \
	src/api.o \
	src/shard.o \
	src/webhook.o \
	src/worker.o

# the version of the library: the one moment.control installs by default
MOMENT_SRC := $(dir $(lastword $(MAKEFILE_LIST)))
EXTVERSION := $(shell grep -E '^default_version' $(MOMENT_SRC)moment.control | sed -E "s/.*'(.*)'.*/\1/")

PG_CPPFLAGS = -I$(srcdir)/src -DMOMENT_VERSION='"$(EXTVERSION)"'
# webhook deliveries (src/worker.c)
SHLIB_LINK = -lcurl

PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

TESTS = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=test --load-extension=moment

PG_CONFIG ?= pg_config
PG_MAJOR := $(shell $(PG_CONFIG) --version 2>/dev/null | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
ifeq ($(PG_MAJOR),)
$(error cannot run $(PG_CONFIG): install postgresql-server-dev-15, or set PG_CONFIG)
endif
ifeq ($(shell test $(PG_MAJOR) -ge 15 && echo ok),)
$(error moment needs PostgreSQL 15 or later; $(PG_CONFIG) is PostgreSQL $(PG_MAJOR))
endif
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every object depends on every header (PGXS tracks no header dependencies)
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# META.json (PGXN) in step with moment.control, the Makefile and sql/
.PHONY: check-meta dist
check-meta:
	$(MOMENT_SRC)scripts/check-meta $(MOMENT_SRC)

# The release archive, as PGXN takes it: HEAD of the git tree (committed
# files only), under a moment-<version>/ prefix.
DISTNAME = $(EXTENSION)-$(EXTVERSION)
dist: check-meta
	@git -C $(MOMENT_SRC) diff --quiet HEAD -- || echo "warning: uncommitted changes are not in $(DISTNAME).zip" >&2
	git -C $(MOMENT_SRC) archive --format=zip --prefix=$(DISTNAME)/ --output=$(abspath $(DISTNAME).zip) HEAD
	@echo "$(DISTNAME).zip"

# The router, a second extension of its own (router/): built, installed and
# cleaned with this one.
all: router-all
install: router-install
clean: router-clean

router-all router-install router-clean:
	$(MAKE) -C $(MOMENT_SRC)router $(patsubst router-%,%,$@) PG_CONFIG=$(PG_CONFIG)

.PHONY: router-all router-install router-clean
