/* test_list.h - every unit test, in one list (X-macro), assembled from one
 * fragment per unit so that each unit's file owns its own lines. */
#include "list_ring.h"
#include "list_decode.h"
#include "list_detect.h"
#include "list_copy.h"
#include "list_spool.h"
#include "list_daemon.h"
#include "list_pipeline.h"
#include "list_alert_ref.h"
#include "list_schema_ops.h"
