/* ops.h - the DynamoDB operations, one handler each (see request.h for the
 * handler contract). Grouped by file:
 *   ops_table.c  CreateTable DescribeTable ListTables DeleteTable UpdateTable
 *   ops_item.c   PutItem GetItem DeleteItem UpdateItem
 *   ops_query.c  Query Scan
 *   ops_batch.c  BatchGetItem BatchWriteItem
 *   ops_admin.c  Meridian's own: TableDigest RangeKeys ListConflicts
 *                (X-Amz-Target "Meridian_20261121.<Op>", SigV4-signed like the rest)
 */
#ifndef MERIDIAN_OPS_H
#define MERIDIAN_OPS_H

#include "api/request.h"

int op_create_table(op_ctx *c);
int op_describe_table(op_ctx *c);
int op_list_tables(op_ctx *c);
int op_delete_table(op_ctx *c);
int op_update_table(op_ctx *c);

int op_put_item(op_ctx *c);
int op_get_item(op_ctx *c);
int op_delete_item(op_ctx *c);
int op_update_item(op_ctx *c);

int op_query(op_ctx *c);
int op_scan(op_ctx *c);
/* Appends meridian_tombstones_skipped_total (tombstones Query and Scan pages
 * walked over, process-wide) in Prometheus text to out. */
void query_render_metrics(buf *out);

int op_batch_get_item(op_ctx *c);
int op_batch_write_item(op_ctx *c);

int op_table_digest(op_ctx *c);
int op_range_keys(op_ctx *c);
int op_list_conflicts(op_ctx *c);

#endif
